// The virtual network of the app (only when main.bicep's vnetEnabled is true).
//
// Two subnets, as in the Azure Functions Flex Consumption samples:
//   - app: the function app's outbound traffic (VNet integration). Flex Consumption
//     needs a subnet delegated to Microsoft.App/environments; /24 leaves room for the
//     instances the plan scales to.
//   - private-endpoints: the private endpoints of the storage account (blob, queue,
//     table), the Key Vault and the function app itself.
// Each subnet has its own network security group with the platform's default rules
// (traffic inside the VNet allowed, inbound from the internet denied): nothing here
// needs an inbound rule from outside, and the private endpoints are reached only from
// the VNet (and whatever network you peer with it, e.g. the intranet's reverse proxy).

param name string
param location string
param tags object = {}

@description('Address space of the VNet.')
param addressPrefix string = '10.60.0.0/16'
param appSubnetPrefix string = '10.60.1.0/24'
param privateEndpointSubnetPrefix string = '10.60.2.0/24'

resource appNsg 'Microsoft.Network/networkSecurityGroups@2024-01-01' = {
  name: '${name}-app-nsg'
  location: location
  tags: tags
  properties: {
    securityRules: []
  }
}

resource privateEndpointNsg 'Microsoft.Network/networkSecurityGroups@2024-01-01' = {
  name: '${name}-pe-nsg'
  location: location
  tags: tags
  properties: {
    securityRules: []
  }
}

resource vnet 'Microsoft.Network/virtualNetworks@2024-01-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    addressSpace: {
      addressPrefixes: [
        addressPrefix
      ]
    }
    subnets: [
      {
        name: 'app'
        properties: {
          addressPrefix: appSubnetPrefix
          networkSecurityGroup: {
            id: appNsg.id
          }
          delegations: [
            {
              name: 'flex-consumption'
              properties: {
                serviceName: 'Microsoft.App/environments'
              }
            }
          ]
        }
      }
      {
        name: 'private-endpoints'
        properties: {
          addressPrefix: privateEndpointSubnetPrefix
          networkSecurityGroup: {
            id: privateEndpointNsg.id
          }
          privateEndpointNetworkPolicies: 'Disabled'
        }
      }
    ]
  }
}

output id string = vnet.id
output name string = vnet.name
output appSubnetId string = '${vnet.id}/subnets/app'
output privateEndpointSubnetId string = '${vnet.id}/subnets/private-endpoints'
